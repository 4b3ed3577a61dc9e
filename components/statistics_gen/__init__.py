"""StatisticsGen: TFX's statistics of every split, decoded ten times faster."""
