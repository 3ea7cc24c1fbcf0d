"""The moderators' console, framework-free: accounts, the review queue and its claims, appeals,
the policy store and the reports. ``web/console`` renders it."""
