"""Development tools: loopback stand-ins for the services Passerelle talks to (the social
platforms, Stripe, an SMTP server, a webhook receiver), used by the tests, the benchmarks and
``make run``. No application package imports this one, and it imports no test code."""
