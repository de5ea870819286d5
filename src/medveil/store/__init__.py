"""Where results are kept: mapping files and the private audit store."""
