"""Core: what every layer above reads — the errors, the bounds of every wait, atomic files and locks, what a run
is (its curve, its spec, the profile), pure statistics and verdicts, versions, the registry of check kinds (names
only), figures and progress lines. Nothing here trains or knows a store's layout."""
