"""What a run generated: the dataset profile per column type, export and publishing."""

from rowloom.profile.dataset import profile_run, read_profile, write_profile

__all__ = ["profile_run", "read_profile", "write_profile"]
