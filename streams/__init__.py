"""moodstream streams."""
