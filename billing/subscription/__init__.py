"""The agency's own Passerelle subscription: Stripe Checkout and customer portal, plan and
standing, seats kept in step with active staff, Stripe's webhook events, the agency's connected
Stripe account setting, and the one Stripe client (`stripe_gateway`). Imports no other part of
billing."""
