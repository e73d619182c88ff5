error("hidden files are skipped")
