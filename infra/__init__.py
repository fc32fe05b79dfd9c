"""kafka-platform: a team's Kafka platform from one typed description."""
