"""moodstream dashboard."""
