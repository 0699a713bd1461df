"""Self-paced quizzes that check the live lab."""
