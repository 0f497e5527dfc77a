"""calcas: calibration, cascading and cleaning, the executable companion to "When models
know when they do not know". One module per idea of the paper; see the README."""
from ._version import __version__

from .binning import assign_bins, bin_edges, equal_count_edges, equal_width_edges
from .calibration import (CalibratedRecords, PlattScaling, TemperatureScaling, calibrate_records, fit_platt,
                          fit_temperature, temperature_nll)
from .cascade import AdvantageRouter, advantage_bins, cascade_curve, cascade_curves, oracle_accuracy
from .chain import (CascadeSelector, ChainFrontier, betting_p_values, cascade_frontier, costs_from_records,
                    evaluate_frontier)
from .certify import ThresholdSelector, select_cascade, threshold_grid
from .cleaning import (cleaned_accuracy, cleaning_sweep, confident_disagreement_level,
                       confident_learning_flags, flag_class_threshold, flag_confident_disagreement,
                       disagreement_sweep, flag_top1_disagreement, label_errors, overlap_summary, precision,
                       precision_interval)
from .confidence import (class_confidence, max_prob_confidence, mean_token_logit, restricted_confidence,
                         sequence_likelihood, softmax, top1_logit)
from .metrics import (brier, classwise_ece, default_n_bins, ece, ece_bootstrap, ece_difference_interval, ece_interval,
                      mce, min_detectable_ece, monotonicity, nll, paired_difference_interval, proportion_interval,
                      reliability_table, smooth_ece, top_label_ece)
from .records import (Records, RecordsError, RecordsWarning, align, cal_test_split, make_records, read_records, record_set_names,
                      write_records)
from .synthetic import make_synthetic

__all__ = [name for name in dir() if not name.startswith("_")]
