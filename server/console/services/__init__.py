"""What each console page shows, built from the manager API's service functions under the
caller's scope (never HTTP to ourselves, never a second copy of their rules)."""
