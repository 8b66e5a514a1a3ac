"""The public API's own objects: partner apps (OAuth2 client credentials), the scopes their
tokens carry, rate limits, and outbound webhooks signed per Standard Webhooks."""
