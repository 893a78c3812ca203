"""Tests of the web wing: access rules, errors, ETags, CORS, proxies, the OpenAPI document."""
