"""Every statistic in one place: quality metrics (log-loss, accuracy, latency summaries) and the
intervals and rank tests latency verdicts rest on.
"""
