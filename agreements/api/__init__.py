"""REST API of the agreements app (views, serializers, urls) and the inbound webhook view."""
