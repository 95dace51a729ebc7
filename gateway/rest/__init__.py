"""REST from declarations: JSON enums, response views and request bodies derived from protobuf descriptors.

A resource's REST surface is declared in a few lines: its JSON enums (`ProtoEnum`), the fields a
response shows (`View`: which, shortened how, null when empty, described how), the fields a body may
set (`Body`: constraints and examples; output-only fields are simply not there), and its routes
(`gateway.rest.routes.Endpoints`: which RPC, which path, which params). The conversion to and from
protobuf and the OpenAPI schemas come from the message descriptors, the same way for every service.
"""

from gateway.rest.bodies import Body, Named, Proto, patch_of
from gateway.rest.enums import ProtoEnum, from_pb, proto_enums, to_pb
from gateway.rest.names import last_segment, path_of, ref_of, short
from gateway.rest.views import Out, View

__all__ = [
    "Body",
    "Named",
    "Out",
    "Proto",
    "ProtoEnum",
    "View",
    "from_pb",
    "last_segment",
    "patch_of",
    "path_of",
    "proto_enums",
    "ref_of",
    "short",
    "to_pb",
]
