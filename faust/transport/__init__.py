"""Brokers: the embedded ``memory://`` broker and Kafka, behind one small interface."""
