"""Detection ops: anchors, box coding, target assignment, NMS."""
