"""moodstream storage."""
