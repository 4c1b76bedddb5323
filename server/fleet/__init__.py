"""Fleet health: what every device did and reported (``recorder``, ``models``), what the
manager API shows about it (``health``). See docs/server.md "Fleet health"."""
