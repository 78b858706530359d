"""Security policy pack for the stack: rules, the offline gate and the CrossGuard adapter."""
