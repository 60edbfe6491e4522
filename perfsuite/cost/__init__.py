"""The cost model: analytic work and predicted time per component (`model`), datasheet and
calibrated devices (`devices`), efficiency factors fitted to stored baselines (`fit`), and the
`explain` / `budget` commands built on them (`explain`)."""
