"""Intent memories, the persona fits of each day and their next-day utility."""
