"""Rich views, one per result object. Builds things to print; never prints."""
