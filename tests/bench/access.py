"""The benchmarks' identity provider: the services they start read its keys (AUTH_JWKS_URL is
set on import, before any service starts) and accept `AUTHORIZATION`, valid for every role."""

import os
import tempfile
from pathlib import Path

from tests.infra import Issuer

_issuer = Issuer(Path(tempfile.mkdtemp(prefix="frisag-bench-issuer-")))
os.environ["AUTH_JWKS_URL"] = _issuer.jwks_url
# valid for the longest run (`make bench-scale`: about 1.5 hours): an hour's token expired in its
# last phase, the service answered 401, and the bench dropped its database as it unwound
AUTHORIZATION = f"Bearer {_issuer.everything(lifetime=12 * 3600)}"
