"""moodstream serving."""
