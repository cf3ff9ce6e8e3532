"""The scripts the backup and restore pods run, mounted from ConfigMaps (no secret in them).

Every secret a script uses arrives in its environment from a Kubernetes Secret
(`secretKeyRef`): the PostgreSQL clients read `PGPASSWORD`, the AWS CLI
`AWS_SECRET_ACCESS_KEY`, the Keycloak scripts `KEYCLOAK_PASSWORD`. Each script writes to
a `.partial` name and renames it when done, so a folder never holds a half-written file
under its final name. Tests run them against named fakes of pg_dump, pg_restore and aws.
"""

from __future__ import annotations

KEYCLOAK_EXPORT = '''\
"""Export the nebari realm and its users from Keycloak's admin API into $OUT.

realm.json: clients, groups and roles (the admin API's partial export). users.json: every
user with their attributes, group paths and links to external identity providers. The
admin API never returns password hashes: those are only in the database dump.
"""
import json, os, urllib.parse, urllib.request

base, out = os.environ["KEYCLOAK_URL"].rstrip("/"), os.environ["OUT"]
form = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
    "username": os.environ["KEYCLOAK_USER"], "password": os.environ["KEYCLOAK_PASSWORD"]}).encode()
with urllib.request.urlopen(base + "/realms/master/protocol/openid-connect/token", form, timeout=60) as r:
    token = json.load(r)["access_token"]

def call(path, method="GET"):
    req = urllib.request.Request(base + "/admin/realms/nebari" + path, method=method,
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)

os.makedirs(out, exist_ok=True)
realm = call("/partial-export?exportClients=true&exportGroupsAndRoles=true", "POST")
users, first = [], 0
while True:
    page = call(f"/users?first={first}&max=200&briefRepresentation=false")
    for user in page:
        user["groups"] = [g["path"] for g in call(f"/users/{user['id']}/groups")]
        user["federatedIdentities"] = call(f"/users/{user['id']}/federated-identity")
    users += page
    first += len(page)
    if len(page) < 200:
        break
for name, data in (("realm.json", realm), ("users.json", users)):
    with open(os.path.join(out, name), "w") as f:
        json.dump(data, f, indent=2)
print(f"keycloak: realm and {len(users)} users exported to {out} (no password hashes)")
'''

ARCHIVE = """\
set -eu
mkdir -p "$OUT"
tar -czf "$OUT/$NAME.tar.gz.partial" -C "$SOURCE" .
mv "$OUT/$NAME.tar.gz.partial" "$OUT/$NAME.tar.gz"
echo "$NAME: archived $SOURCE to $OUT/$NAME.tar.gz"
"""

#: pg_dump reads PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD from the environment.
#: Custom format: compressed, and pg_restore can clean and restore it object by object.
PG_DUMP = """\
set -eu
mkdir -p "$OUT"
pg_dump --format=custom --file="$OUT/$NAME.dump.partial"
mv "$OUT/$NAME.dump.partial" "$OUT/$NAME.dump"
echo "$NAME: dumped database $PGDATABASE from $PGHOST to $OUT/$NAME.dump"
"""

#: The AWS CLI speaks S3 to MinIO; $AWS_CONFIG_FILE (aws-config) asks for path-style URLs.
BUCKET_MIRROR = """\
set -eu
mkdir -p "$OUT/$NAME.partial"
aws s3 sync --endpoint-url "$S3_ENDPOINT" --only-show-errors "s3://$BUCKET" "$OUT/$NAME.partial"
mv "$OUT/$NAME.partial" "$OUT/$NAME"
echo "$NAME: copied bucket $BUCKET from $S3_ENDPOINT to $OUT/$NAME"
"""

#: MinIO answers on a cluster-internal host name, which virtual-hosted URLs
#: (`<bucket>.<host>`) would not resolve.
AWS_CONFIG = """\
[default]
s3 =
    addressing_style = path
"""

PRUNE = """\
set -eu
find /backup -mindepth 1 -maxdepth 1 -type d -mtime "+$KEEP_DAYS" -print -exec rm -rf {} +
echo "$RUN" > /backup/LATEST
echo "backup $RUN complete"
"""

#: Shared by the restore scripts: the backup to read, by ID or `latest`.
_SOURCE = """\
set -eu
if [ "$BACKUP_ID" = latest ]; then BACKUP_ID=$(cat /backup/LATEST); fi
SOURCE="/backup/$BACKUP_ID"
test -d "$SOURCE" || { echo "no backup $BACKUP_ID in /backup (ls /backup lists them)" >&2; exit 1; }
"""

#: --clean --if-exists: the database's objects are replaced by the dump's, whatever the
#: deploy created since; one transaction, so a failed restore leaves the database as it was.
PG_RESTORE = (
    _SOURCE
    + """\
if [ ! -f "$SOURCE/$NAME.dump" ]; then
  echo "$NAME: backup $BACKUP_ID has no $NAME.dump; nothing to restore for it" >&2
  [ "${OPTIONAL:-}" = yes ] && exit 0
  exit 1
fi
pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error \\
  --dbname="$PGDATABASE" "$SOURCE/$NAME.dump"
echo "$NAME: restored database $PGDATABASE on $PGHOST from $SOURCE/$NAME.dump"
"""
)

BUCKET_RESTORE = (
    _SOURCE
    + """\
test -d "$SOURCE/$NAME" || { echo "$NAME: backup $BACKUP_ID has no $NAME/" >&2; exit 1; }
aws s3 sync --endpoint-url "$S3_ENDPOINT" --only-show-errors "$SOURCE/$NAME" "s3://$BUCKET"
echo "$NAME: copied $SOURCE/$NAME back into bucket $BUCKET"
"""
)

UNARCHIVE = (
    _SOURCE
    + """\
test -f "$SOURCE/$NAME.tar.gz" || { echo "$NAME: backup $BACKUP_ID has no $NAME.tar.gz" >&2; exit 1; }
tar -xzf "$SOURCE/$NAME.tar.gz" -C "$TARGET"
echo "$NAME: extracted $SOURCE/$NAME.tar.gz into $TARGET"
"""
)

KEYCLOAK_IMPORT = '''\
"""Re-create the exported users in a running Keycloak (a backup without a database dump).

A backup taken while Keycloak ran on dev-file holds users.json but no keycloak-postgresql.dump.
Users are imported with their attributes, groups and identity-provider links; existing users
are skipped. Password hashes were never exported: every imported user gets the required
action UPDATE_PASSWORD, and has no password until an admin sets a temporary one (or the
realm's "forgot password" mail sends a link). Users of an external identity provider log in
through it as before.
"""
import json, os, sys, urllib.parse, urllib.request

backup_id = os.environ["BACKUP_ID"]
if backup_id == "latest":
    backup_id = open("/backup/LATEST").read().strip()
source = os.path.join("/backup", backup_id)
if os.path.exists(os.path.join(source, "keycloak-postgresql.dump")):
    print("keycloak users: restored with the database dump; nothing to import")
    sys.exit(0)
with open(os.path.join(source, "keycloak", "users.json")) as f:
    users = json.load(f)
for user in users:
    user.pop("id", None)
    user["requiredActions"] = sorted(set(user.get("requiredActions") or []) | {"UPDATE_PASSWORD"})
base = os.environ["KEYCLOAK_URL"].rstrip("/")
form = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
    "username": os.environ["KEYCLOAK_USER"], "password": os.environ["KEYCLOAK_PASSWORD"]}).encode()
with urllib.request.urlopen(base + "/realms/master/protocol/openid-connect/token", form, timeout=60) as r:
    token = json.load(r)["access_token"]
body = json.dumps({"ifResourceExists": "SKIP", "users": users}).encode()
req = urllib.request.Request(base + "/admin/realms/nebari/partialImport", body, method="POST",
    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=300) as r:
    result = json.load(r)
print(f"keycloak users: {result.get('added', 0)} imported, {result.get('skipped', 0)} already there; "
      "imported users set a new password (UPDATE_PASSWORD)")
'''
