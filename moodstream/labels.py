"""Label sets of the project and the one mapping of every dataset's labels onto them."""

from __future__ import annotations

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")

SENTIMENT_INDEX = {name: i for i, name in enumerate(SENTIMENTS)}
EMOTION_INDEX = {name: i for i, name in enumerate(EMOTIONS)}

# TweetEval sentiment: 0 negative, 1 neutral, 2 positive (mapping.txt).
TWEETEVAL_SENTIMENT: dict[int, str] = {0: "negative", 1: "neutral", 2: "positive"}

# TweetEval emotion: 0 anger, 1 joy, 2 optimism, 3 sadness. Optimism has no Ekman class; it is
# closest to joy (a positive, forward-looking affect), so it maps there.
TWEETEVAL_EMOTION: dict[int, str] = {0: "anger", 1: "joy", 2: "joy", 3: "sadness"}

# GoEmotions Ekman grouping (ekman_labels.txt): 0 anger, 1 disgust, 2 fear, 3 joy, 4 neutral,
# 5 sadness, 6 surprise.
GOEMOTIONS_EKMAN: dict[int, str] = {
    0: "anger", 1: "disgust", 2: "fear", 3: "joy", 4: "neutral", 5: "sadness", 6: "surprise",
}

# FER-2013 (class_names): 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.
FER2013: dict[int, str] = {
    0: "anger", 1: "disgust", 2: "fear", 3: "joy", 4: "sadness", 5: "surprise", 6: "neutral",
}
FER2013_NAMES: dict[str, str] = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "joy",
    "sad": "sadness", "surprise": "surprise", "neutral": "neutral",
}

# MVSA-Single labels are already the project's sentiment strings.
MVSA: dict[str, str] = {"negative": "negative", "neutral": "neutral", "positive": "positive"}

DATASETS: dict[str, dict] = {
    "tweeteval-sentiment": TWEETEVAL_SENTIMENT,
    "tweeteval-emotion": TWEETEVAL_EMOTION,
    "goemotions": GOEMOTIONS_EKMAN,
    "fer2013": FER2013,
    "mvsa": MVSA,
}


def to_sentiment_index(dataset: str, label: int | str) -> int:
    """Index into ``SENTIMENTS`` of a dataset's own label."""
    return SENTIMENT_INDEX[DATASETS[dataset][label]]


def to_emotion_index(dataset: str, label: int | str) -> int:
    """Index into ``EMOTIONS`` of a dataset's own label."""
    return EMOTION_INDEX[DATASETS[dataset][label]]
