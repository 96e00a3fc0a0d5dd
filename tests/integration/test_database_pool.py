"""The tests' databases are handed out again once emptied (tests/infra.py DatabasePool): one
handed out again must be as a newly created one, or a test could pass on what another left."""

import psycopg
import pytest

from tests.infra import DatabasePool

# what a database holds beyond PostgreSQL's own catalogs, and how its public schema is set
HOLDINGS = """
SELECT 'schema', n.nspname, pg_get_userbyid(n.nspowner), coalesce(n.nspacl::text, ''), coalesce(obj_description(n.oid), '')
  FROM pg_namespace n WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
UNION ALL
SELECT 'relation', c.relnamespace::regnamespace::text || '.' || c.relname, '', '', ''
  FROM pg_class c WHERE c.relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
UNION ALL
SELECT 'type', t.typnamespace::regnamespace::text || '.' || t.typname, '', '', ''
  FROM pg_type t WHERE t.typnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'function', p.proname, '', '', '' FROM pg_proc p WHERE p.pronamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'extension', e.extname, '', '', '' FROM pg_extension e
UNION ALL
SELECT 'default privileges', d.defaclrole::regrole::text, '', '', '' FROM pg_default_acl d
ORDER BY 1, 2
"""


def holdings(url: str) -> list[tuple]:
    with psycopg.connect(url) as db:
        return db.execute(HOLDINGS).fetchall()


def test_a_database_handed_out_again_holds_what_a_new_one_holds(pg_admin):
    pool = DatabasePool(pg_admin)
    try:
        with pool.fresh() as url:
            new = holdings(url)
            with psycopg.connect(url, autocommit=True) as db:
                db.execute("CREATE SCHEMA audit")
                db.execute("CREATE TABLE audit.log (id int)")
                db.execute("CREATE TABLE public.cases (id serial PRIMARY KEY, state jsonb)")
                db.execute("CREATE TYPE public.status AS ENUM ('open')")
                db.execute("CREATE FUNCTION public.one() RETURNS int LANGUAGE sql AS 'SELECT 1'")
                db.execute("REVOKE USAGE ON SCHEMA public FROM PUBLIC")
                left_open = psycopg.connect(url)  # a service's connection the test did not close
                left_open.execute("SELECT count(*) FROM public.cases")
            assert holdings(url) != new
        with pool.fresh() as again:
            assert again == url and holdings(again) == new
        with pytest.raises(psycopg.OperationalError):  # ended, so it cannot write into the next test's
            left_open.execute("SELECT 1")
    finally:
        pool.close()
    assert not pg_admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.rsplit("/", 1)[1],)).fetchone()


def test_a_database_changed_beyond_its_schemas_is_dropped_not_handed_out_again(pg_admin):
    pool = DatabasePool(pg_admin)
    try:
        with pool.fresh() as url:
            name = url.rsplit("/", 1)[1]
            pg_admin.execute(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
        assert not pg_admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        with pool.fresh() as other:
            assert other != url
    finally:
        pool.close()
