"""Data-subject requests reaching the analytics side: `tap privacy erase`."""
