"""tempcreativity: is temperature the creativity parameter of large language models? A replication pipeline."""

__version__ = "0.1.0"
