"""What a workspace's runs did, read from ML Metadata and the artifacts without TensorFlow:
as text (`ctpipe status`) and as one self-contained HTML page (`ctpipe report`)."""
