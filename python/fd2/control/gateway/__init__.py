"""Gateway descriptions fd2 serves natively (the Control Tower's APISIX `api_gateway` module)."""

from fd2.control.gateway.apisix import compile_apisix_route
from fd2.control.gateway.route import GatewayRoute

__all__ = ["GatewayRoute", "compile_apisix_route"]
