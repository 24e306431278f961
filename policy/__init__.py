"""CrossGuard policy pack for this project's stacks (see policy/README in the top-level README)."""
