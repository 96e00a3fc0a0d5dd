"""Import boundaries, from the AST of every module under shared/ and services/ (no import-linter:
three rules, and a plain walk shows exactly what it checks):

- `shared` imports no service;
- a service (a package under services/) imports no other service;
- nothing outside services/case/ imports `services.case`: only the case service reads a citizen.
  The top-level modules of services/ (make run, the consumers' command line and runner, what the
  two consumers share) may import the consumer services, never the case service.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported(path: Path, root: Path) -> set[str]:
    """The modules `path` imports, absolute (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), str(path))
    package = path.parent.relative_to(root).parts
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from services import case`
    return names


def violations(root: Path) -> list[str]:
    found = []
    services = {p.name for p in (root / "services").iterdir() if (p / "__init__.py").exists()}
    for path in sorted((root / "shared").rglob("*.py")) + sorted((root / "services").rglob("*.py")):
        where = path.relative_to(root).parts
        owner = where[1] if where[0] == "services" and where[1] in services else None
        for name in sorted(imported(path, root)):
            parts = name.split(".")
            if parts[0] != "services":
                continue
            target = parts[1] if len(parts) > 1 and parts[1] in services else None
            if where[0] == "shared":
                found.append(f"{path.relative_to(root)} imports {name}: shared imports no service")
            elif target is not None and owner is not None and target != owner:
                found.append(f"{path.relative_to(root)} imports {name}: services do not import each other")
            elif target == "case" and owner != "case":
                found.append(f"{path.relative_to(root)} imports {name}: only services/case/ imports the case service")
    return found


def test_shared_imports_no_service_and_services_do_not_import_each_other():
    assert violations(ROOT) == []


def test_the_walk_finds_each_kind_of_crossing(tmp_path):
    # the check above is only as good as this: a tree with one crossing of each kind
    for module, text in {
        "shared/__init__.py": "", "shared/stream/__init__.py": "", "shared/stream/x.py": "from services.case import bootstrap\n",
        "services/__init__.py": "", "services/case/__init__.py": "", "services/case/a.py": "from . import b\nimport shared.stream\n",
        "services/case/b.py": "", "services/obligations/__init__.py": "",
        "services/obligations/a.py": "from ..reporting import store\n", "services/reporting/__init__.py": "",
        "services/reporting/store.py": "from services.obligations import a\n",
        "services/consuming.py": "import services.case.application\nfrom services.obligations import a\n",
        "services/admin.py": "from services import case\n",
    }.items():
        (tmp_path / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module).write_text(text)
    assert violations(tmp_path) == [
        "shared/stream/x.py imports services.case: shared imports no service",
        "shared/stream/x.py imports services.case.bootstrap: shared imports no service",
        "services/admin.py imports services.case: only services/case/ imports the case service",
        "services/consuming.py imports services.case.application: only services/case/ imports the case service",
        "services/obligations/a.py imports services.reporting: services do not import each other",
        "services/obligations/a.py imports services.reporting.store: services do not import each other",
        "services/reporting/store.py imports services.obligations: services do not import each other",
        "services/reporting/store.py imports services.obligations.a: services do not import each other",
    ]
