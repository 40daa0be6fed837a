"""The core's data side: forget/retain selection with its removal record, the fast split path, images, labels, dataset sources and the embedded default."""
