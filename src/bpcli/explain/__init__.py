"""explain: the chain rule for one parameter, derived and filled in from the engine's tape."""
