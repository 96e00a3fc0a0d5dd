#!/bin/sh
# Frisag's database roles: one per service, frisag_case (the case service and its relay),
# frisag_obligations and frisag_reporting. Each makes and owns its own tables (the services
# migrate them when they start) and is granted nothing on the others': a consumer's role cannot
# read the case store. Run it once per database, as its owner or another role that may create
# roles; running it again only sets the passwords.
#
# It reads psql's connection variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) and the
# three roles' passwords: CASE_DB_PASSWORD, OBLIGATIONS_DB_PASSWORD, REPORTING_DB_PASSWORD.
# docker-compose.yml: the postgres container runs it when it creates the database. Kubernetes:
# the Job `postgres-roles` runs it (deploy/OPERATIONS.md, "Deploying").
set -eu
psql -v ON_ERROR_STOP=1 -v case_password="$CASE_DB_PASSWORD" -v obligations_password="$OBLIGATIONS_DB_PASSWORD" \
     -v reporting_password="$REPORTING_DB_PASSWORD" <<'SQL'
-- roles are the cluster's: another database's run may have made them, or be making them now
DO $$
DECLARE name text;
BEGIN
  FOREACH name IN ARRAY ARRAY['frisag_case', 'frisag_obligations', 'frisag_reporting'] LOOP
    BEGIN
      EXECUTE format('CREATE ROLE %I LOGIN', name);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END LOOP;
END $$;
ALTER ROLE frisag_case PASSWORD :'case_password';
ALTER ROLE frisag_obligations PASSWORD :'obligations_password';
ALTER ROLE frisag_reporting PASSWORD :'reporting_password';
-- this database: only its owner and the three roles connect; each creates its tables in public,
-- where it is the only one to read them (no grants: an owner's tables are its own)
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO frisag_case, frisag_obligations, frisag_reporting',
              current_database()) \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO frisag_case, frisag_obligations, frisag_reporting;
SQL
