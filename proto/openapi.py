"""OpenAPI 3 description of the REST API, generated from the proto's
`google.api.http` annotations (the same descriptor set Envoy transcodes with).

    python proto/openapi.py gen/envoy/facesearch.pb > gen/openapi/facesearch.json

It writes what Envoy's transcoder actually accepts and answers: snake_case
field names (preserve_proto_field_names), every scalar field printed
(always_print_primitive_fields), int64 as strings, enums by name, and the
error body {error, message, code} for every refusal. grpc-gateway's
protoc-gen-openapiv2 does this job in Go; it cannot be installed here
(no Go module proxy), so this is the small Python equivalent.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor

SERVICE = "facesearch.v1.FaceSearch"
F = FieldDescriptor
SCALARS = {
    F.TYPE_DOUBLE: {"type": "number"},
    F.TYPE_FLOAT: {"type": "number"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    F.TYPE_FIXED32: {"type": "integer", "format": "int32", "minimum": 0},
    # proto3 JSON writes 64-bit integers as strings and reads either.
    F.TYPE_INT64: {"type": "string", "format": "int64"},
    F.TYPE_SINT64: {"type": "string", "format": "int64"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    F.TYPE_UINT64: {"type": "string", "format": "int64"},
    F.TYPE_FIXED64: {"type": "string", "format": "int64"},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "format": "byte"},
}
# Well-known types in their JSON form.
WELL_KNOWN = {
    "google.protobuf.Value": {"description": "any JSON value"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
}
ERROR = {
    "type": "object",
    "required": ["error", "message", "code"],
    "properties": {
        "error": {"type": "string", "description": "stable machine-readable reason, e.g. invalid_base64"},
        "message": {"type": "string", "description": "what was wrong, naming the field"},
        "code": {"type": "string", "description": "gRPC status name; UNAUTHORIZED / FORBIDDEN for 401 / 403"},
    },
}
REFUSALS = {
    "400": "invalid request: the body, a field or an image",
    "401": "no token, or a token that does not verify",
    "403": "the token has expired",
    "404": "no such collection, person or route",
    "409": "already exists (a collection name)",
    "413": "the body is larger than 16 MiB",
    "503": "a backend service is not answering; retry",
}


def load_pool(descriptor_set: Path) -> descriptor_pool.DescriptorPool:
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    return pool


def comments(descriptor_set: Path) -> dict[tuple[str, str], str]:
    """Leading comments of services' methods and messages' fields, by (parent, name)."""
    found: dict[tuple[str, str], str] = {}
    for f in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file:
        for loc in f.source_code_info.location:
            text = " ".join(line.strip() for line in loc.leading_comments.strip().splitlines())
            path = list(loc.path)
            if not text:
                continue
            if len(path) == 4 and path[0] == 6 and path[2] == 2:  # service.method
                found[(f.service[path[1]].name, f.service[path[1]].method[path[3]].name)] = text
            elif len(path) == 4 and path[0] == 4 and path[2] == 2:  # top-level message.field
                message = f.message_type[path[1]]
                found[(f"{f.package}.{message.name}", message.field[path[3]].name)] = text
    return found


class Builder:
    def __init__(self, pool: descriptor_pool.DescriptorPool, notes: dict[tuple[str, str], str]):
        self.pool, self.notes = pool, notes
        self.schemas: dict[str, dict] = {"Error": ERROR}

    def ref(self, message: Descriptor) -> dict:
        if message.full_name in WELL_KNOWN:
            return dict(WELL_KNOWN[message.full_name])
        name = message.full_name.removeprefix("facesearch.v1.").replace(".", "_")
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder against recursion
            self.schemas[name] = self.message(message)
        return {"$ref": f"#/components/schemas/{name}"}

    def field(self, field: FieldDescriptor) -> dict:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.field(field.message_type.fields_by_name["value"])}
        if field.type == F.TYPE_MESSAGE:
            schema = self.ref(field.message_type)
        elif field.type == F.TYPE_ENUM:
            schema = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        else:
            schema = dict(SCALARS[field.type])
        if field.is_repeated:
            schema = {"type": "array", "items": schema}
        note = self.notes.get((field.containing_type.full_name, field.name))
        if note and "$ref" not in schema:
            schema["description"] = note
        return schema

    def message(self, message: Descriptor, skip: set[str] = frozenset()) -> dict:
        return {"type": "object", "properties": {f.name: self.field(f) for f in message.fields if f.name not in skip}}

    def operation(self, method, verb: str, path: str, body: str) -> dict:
        request = method.input_type
        in_path = set(re.findall(r"{(\w+)", path))
        parameters = [
            {"name": n, "in": "path", "required": True, "schema": self.field(request.fields_by_name[n])}
            for n in sorted(in_path)
        ]
        operation: dict = {
            "operationId": method.name,
            "summary": self.notes.get((method.containing_service.name, method.name), method.name),
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": self.ref(method.output_type)}}}
            },
        }
        for status, text in REFUSALS.items():
            operation["responses"][status] = {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        if body == "*":
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self.message(request, skip=in_path)}},
            }
        elif not body:
            parameters += [
                {"name": f.name, "in": "query", "schema": self.field(f)}
                for f in request.fields
                if f.name not in in_path and f.type != F.TYPE_MESSAGE
            ]
        if parameters:
            operation["parameters"] = parameters
        return operation

    def document(self) -> dict:
        service = self.pool.FindServiceByName(SERVICE)
        paths: dict[str, dict] = {}
        for method in service.methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            verb = rule.WhichOneof("pattern")
            path = getattr(rule, verb)
            paths.setdefault(path, {})[verb] = self.operation(method, verb, path, rule.body)
        return {
            "openapi": "3.0.3",
            "info": {
                "title": "FaceSearch",
                "version": "v2",
                "description": "1:N face search, Verifik-compatible. Generated from "
                "proto/facesearch/v1/facesearch.proto by proto/openapi.py.",
            },
            "paths": paths,
            "components": {
                "schemas": self.schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            },
        }


def generate(descriptor_set: Path) -> dict:
    return Builder(load_pool(descriptor_set), comments(descriptor_set)).document()


if __name__ == "__main__":
    json.dump(generate(Path(sys.argv[1])), sys.stdout, indent=1)
    sys.stdout.write("\n")
