"""Published device profiles (YAML) shipped with edgetts; see tools/make_published_profiles.py."""
