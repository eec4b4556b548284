"""Training code for the moodstream models (text, vision, fusion) and the dataset readers they share."""
