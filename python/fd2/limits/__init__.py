"""Rate limits: GCRA over requests and tokens, in process or shared through Redis."""
