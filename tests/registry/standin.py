"""A STAND-IN for a Confluent Schema Registry, for tests/registry_interop.rs only.

No Confluent Schema Registry, Apicurio or Karapace server installs from the package
registries this machine reaches, so the tests serve the schemas that Python confluent-kafka's
serializers register from this small implementation of the registry's REST API (Python
standard library only). It answers the calls the serializers and mqscope make, as the
Confluent API documents them, and nothing more; it checks no compatibility.

    POST /subjects/{subject}/versions   register (the same schema again: the same id)
    GET  /schemas/ids/{id}              {"schema", "schemaType" (unless AVRO), "references"}
    GET  /schemas/ids/{id}/versions     [{"subject", "version"}]
    GET  /subjects                      the subject names
    GET  /subjects/{subject}/versions/{version|latest}
    POST /subjects/{subject}            look a schema up under a subject

For the tests: GET /_counts (requests per method and path since the last reset),
POST /_reset_counts, GET /_last_auth (the Authorization header of the last schema request). With --garbage every GET of a schema answers 200 with text that is
not JSON (a registry returning garbage). With --tls CERT KEY it serves HTTPS. Prints its
port on the first line of stdout.
"""
import json
import ssl
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
schemas = []  # id - 1 -> {"schema", "schemaType", "references"}
subjects = {}  # subject -> [id of version 1, id of version 2, ...]
counts = {}
last_auth = [None]
garbage = "--garbage" in sys.argv


def schema_key(body):
    return json.dumps(
        [body.get("schema"), body.get("schemaType", "AVRO"), body.get("references", [])],
        sort_keys=True,
    )


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def not_found(self, code, message):
        self.answer(404, {"error_code": code, "message": message})

    def parts(self):
        path = urllib.parse.urlsplit(self.path).path
        with lock:
            key = f"{self.command} {path}"
            if not path.startswith("/_"):
                counts[key] = counts.get(key, 0) + 1
                last_auth[0] = self.headers.get("Authorization")
        return [urllib.parse.unquote(p) for p in path.strip("/").split("/")]

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def version_answer(self, subject, version):
        with lock:
            ids = subjects.get(subject)
            if not ids:
                return None
            if version == "latest":
                version = len(ids)
            version = int(version)
            if not 1 <= version <= len(ids):
                return None
            sid = ids[version - 1]
            s = schemas[sid - 1]
        out = {"subject": subject, "version": version, "id": sid, "schema": s["schema"]}
        if s["schemaType"] != "AVRO":
            out["schemaType"] = s["schemaType"]
        if s["references"]:
            out["references"] = s["references"]
        return out

    def do_GET(self):
        p = self.parts()
        if p == ["_counts"]:
            with lock:
                return self.answer(200, dict(counts))
        if p == ["_last_auth"]:
            with lock:
                return self.answer(200, last_auth[0])
        if garbage and p and p[0] in ("schemas", "subjects"):
            data = b"<html>this is not a schema registry</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if p == ["subjects"]:
            with lock:
                return self.answer(200, sorted(subjects))
        if len(p) >= 3 and p[:2] == ["schemas", "ids"] and p[2].isdigit():
            sid = int(p[2])
            with lock:
                s = schemas[sid - 1] if 1 <= sid <= len(schemas) else None
                found = [
                    {"subject": subj, "version": i + 1}
                    for subj, ids in sorted(subjects.items())
                    for i, x in enumerate(ids)
                    if x == sid
                ]
            if s is None:
                return self.not_found(40403, f"Schema {sid} not found")
            if len(p) == 4 and p[3] == "versions":
                return self.answer(200, found)
            out = {"schema": s["schema"]}
            if s["schemaType"] != "AVRO":
                out["schemaType"] = s["schemaType"]
            if s["references"]:
                out["references"] = s["references"]
            return self.answer(200, out)
        if len(p) == 4 and p[0] == "subjects" and p[2] == "versions":
            out = self.version_answer(p[1], p[3])
            if out is None:
                return self.not_found(40402, f"Version {p[3]} of {p[1]} not found")
            return self.answer(200, out)
        if len(p) == 3 and p[0] == "subjects" and p[2] == "versions":
            with lock:
                ids = subjects.get(p[1])
            if not ids:
                return self.not_found(40401, f"Subject {p[1]} not found")
            return self.answer(200, list(range(1, len(ids) + 1)))
        self.not_found(404, "not a call this stand-in answers")

    def do_POST(self):
        p = self.parts()
        if p == ["_reset_counts"]:
            with lock:
                counts.clear()
            return self.answer(200, {})
        body = self.body()
        entry = {
            "schema": body.get("schema"),
            "schemaType": body.get("schemaType", "AVRO"),
            "references": body.get("references", []),
        }
        key = schema_key(entry)
        if len(p) == 3 and p[0] == "subjects" and p[2] == "versions":
            with lock:
                sid = next(
                    (i + 1 for i, s in enumerate(schemas) if schema_key(s) == key), None
                )
                if sid is None:
                    schemas.append(entry)
                    sid = len(schemas)
                ids = subjects.setdefault(p[1], [])
                if sid not in ids:
                    ids.append(sid)
            return self.answer(200, {"id": sid})
        if len(p) == 2 and p[0] == "subjects":
            with lock:
                ids = subjects.get(p[1], [])
                hit = [
                    (i + 1, sid)
                    for i, sid in enumerate(ids)
                    if schema_key(schemas[sid - 1]) == key
                ]
            if not hit:
                return self.not_found(40403, "Schema not found")
            return self.answer(200, self.version_answer(p[1], hit[0][0]))
        self.not_found(404, "not a call this stand-in answers")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if "--tls" in sys.argv:
    at = sys.argv.index("--tls")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[at + 1], sys.argv[at + 2])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
