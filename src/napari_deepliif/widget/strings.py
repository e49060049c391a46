"""User-facing strings of the napari widget: labels, tooltips and messages, in one place."""

from __future__ import annotations

TITLE = "DeepLIIF IHC scoring"

# ---- input ---------------------------------------------------------------------------------
IMAGE = "Image"
IMAGE_TIP = ("RGB brightfield IHC image layer (8-bit) to score; a class-map model also takes a one-channel "
             "(fluorescence) layer.")
AREA = "Area"
AREA_WHOLE = "Whole image"
AREA_ROIS = "ROIs of a Shapes layer"
AREA_VIEW = "Current field of view"
AREA_TIP = ("What to score: the whole image, the rectangles/polygons of a Shapes layer (one score "
            "per ROI and a total over them), or the part of the image now on screen.")
SHAPES = "ROI layer"
SHAPES_TIP = "Shapes layer whose rectangles and polygons are the regions of interest."
LEVEL = "Pyramid level"
LEVEL_TIP = "For multiscale images: the level to read (0 = full resolution); only the area is read."

# ---- engine --------------------------------------------------------------------------------
ENGINE = "Engine"
ENGINE_TIP = ("DeepLIIF model (installed models of the model index and local folders) or the "
              "classical 'stain' engine (colour deconvolution; no weights, not DeepLIIF).")
STAIN_ITEM = "stain (classical colour deconvolution, not DeepLIIF)"
NOT_INSTALLED = "not installed: Download"
DOWNLOAD = "Download"
DOWNLOAD_TIP = "Download the selected model from the model index (hash-checked)."
LOCAL = "Use local folder..."
LOCAL_TIP = "Register a DeepLIIF model folder on this machine (train_opt.txt and the G*.pt nets)."
LOCAL_DIALOG = "DeepLIIF model folder"
ENGINE_IN_USE = "Engine in use: {engine}"
ENGINE_NONE = "Engine in use: none yet (the model loads on the first run)"
RESOLUTION = "Magnification"
RESOLUTION_TIP = ("10x/20x/40x (tile size 128/256/512 px). Pre-filled from the layer's pixel size "
                  "when it is known (scale in µm, or metadata 'mpp').")
DEVICE = "Device"
DEVICE_TIP = "Where the network runs: auto picks CUDA, then MPS, then the CPU."
PRECISION = "Precision"
PRECISION_TIP = ("fp32 matches the reference; fast uses bf16/fp16 where the hardware has it "
                 "(for GPUs: on CPUs it gains little).")
OUTPUTS = "Outputs"
OUTPUTS_ALL = "All modalities and cells"
OUTPUTS_SCORE = "Score only (Marker and cells)"
OUTPUTS_TIP = "All modalities (Hema, DAPI, Lap2, Marker) or only what scoring needs (faster)."

# ---- run -----------------------------------------------------------------------------------
RUN = "Run"
RUN_TIP = "Score the chosen area; the output layers are placed over it and updated on re-runs."
CANCEL = "Cancel"
CANCEL_TIP = "Stop after the current batch of tiles; nothing is added."
CANCELLED = "DeepLIIF run cancelled: no layers were changed."
NO_IMAGE = "Choose an RGB image layer first."
NO_SHAPES = "Choose a Shapes layer with at least one rectangle or polygon ROI."
ROI_OUTSIDE = "The area to score lies outside the image."
DOWNLOADED = "Model {name} downloaded to {path}."
ADDED = "Local model {name} added ({path})."

# ---- sliders -------------------------------------------------------------------------------
THRESHOLDS = "Thresholds"
DAB_THRESH = "DAB threshold (OD)"
DAB_THRESH_TIP = ("Stain engine: a nucleus whose mean DAB optical density is above this is positive (QuPath's "
                  "default 0.2). Raise it where hematoxylin-only nuclei come out positive. Moving it re-runs the "
                  "stain engine on the same area (its foreground threshold is kept), as score --dab-threshold does.")
CLASS_THRESHOLDS_OFF = ("Positive by a compartment (below): the DAB and marker thresholds, which set the "
                        "engine's class, do not apply; back to \"engine's class\" to use them.")
SEG_THRESH_STAIN = ("Seg threshold: not used by the stain engine. Its Seg map has no probability ramp (every "
                    "nucleus pixel is pure red or blue), so only its top value would change anything, and it "
                    "removes every cell. Use the DAB threshold and the size sliders instead.")
SEG_THRESH = "Seg threshold"
SEG_THRESH_TIP = "A pixel is a cell pixel if R + B of the Seg map exceeds this (recomputes the cells; no network)."
SIZE_THRESH = "Min size (px)"
SIZE_THRESH_TIP = "Count cells with more pixels than this (default: the reference's size-distribution rule)."
SIZE_UPPER = "Max size (px)"
SIZE_UPPER_TIP = "Count cells with fewer pixels than this; at the right end there is no cap (the default)."
MARKER_THRESH = "Marker threshold"
MARKER_THRESH_TIP = ("A cell whose Marker value is above this is positive; at the left end no marker "
                     "threshold is used (the default).")
OFF = "off"
DEFAULTS = "Defaults"
DEFAULTS_TIP = "Back to the reference defaults of every threshold."

# ---- positive by compartment -----------------------------------------------------------------
POSITIVE_BY_BOX = "Positive by"
POSITIVE_BY = "Positive by"
POSITIVE_BY_TIP = ("What decides that a cell is positive: the engine's class (DeepLIIF's Seg map, the stain "
                   "engine's nuclear DAB), or the mean DAB optical density of one compartment measured on the IHC "
                   "image: nucleus (nuclear markers: Ki67, ER, PR), cytoplasm, membrane (PD-L1, HER2) or the whole "
                   "cell. Re-scored from the cell table; the network does not run again.")
COMPARTMENT_ITEMS = {"class": "engine's class", "nucleus": "nucleus DAB OD", "cytoplasm": "cytoplasm DAB OD",
                     "membrane": "membrane DAB OD", "cell": "cell DAB OD"}
POSITIVE_OD = "Positive above (OD)"
POSITIVE_OD_TIP = ("A cell whose compartment's mean DAB OD is above this is positive (1+); a membrane pixel above it "
                   "counts as stained for the completeness. QuPath's default: 0.2.")
BINS = "1+ / 2+ / 3+ and H-score"
BINS_TIP = ("Bin the positive cells by their compartment's DAB OD: 2+ above the first value, 3+ above the second "
            "(QuPath's defaults 0.4 and 0.6), and show the H-score (1 x %1+ + 2 x %2+ + 3 x %3+, 0-300).")
BIN_2 = "2+ above (OD)"
BIN_3 = "3+ above (OD)"
COMPLETENESS = "Min. membrane (%)"
COMPLETENESS_TIP = ("For membrane markers: a positive cell also needs at least this share of its membrane ring above "
                    "the positive OD (a complete ring is 100%); at the left end it is not used.")
EXPANSION = "Cell expansion (µm)"
EXPANSION_TIP = ("How far each nucleus is grown into a cell (stopped where neighbours meet); the cytoplasm is the "
                 "cell minus its nucleus, the membrane its outer ring (1 µm). A change measures the cells again on "
                 "the IHC image (not the network): in the background, the score table greyed out meanwhile. "
                 "Also sets the measurements the export writes.")
CLASS_MODE_NOTE = ("Positive by the engine's class: choose a compartment to score on its DAB OD instead (the "
                   "compartment measurements are in the export either way).")
RESULT_CLASS = "Positive by the engine's class."
RESULT_COMPARTMENT = "Positive by {compartment} DAB OD > {od:.2f}{completeness}{expansion}."
RESULT_EXPANSION = " (cells expanded {expansion:g} µm)"
RESULT_COMPLETENESS = " and at least {share:.0f}% of the membrane"
RESULT_BINS = " 1+ {n1}, 2+ {n2}, 3+ {n3}: H-score {h_score}."

# ---- cells and score -----------------------------------------------------------------------
CLICK = "Click on a cell"
CLICK_NOTHING = "does nothing"
CLICK_EXCLUDE = "excludes it"
CLICK_FLIP = "flips its class"
CLICK_RESTORE = "restores it"
CLICK_TIP = "What a click on a cell of the cells layer does (overrides are kept until Seg threshold changes)."
SCORE_HEADERS = ("Area", "Total", "Pos.", "Neg.", "% pos.")
BIN_HEADERS = ("1+", "2+", "3+", "H-score")
SCORE_ALL = "All"
SCORE_ROI = "ROI {index}"

# ---- export --------------------------------------------------------------------------------
EXPORT = "Export..."
EXPORT_TIP = ("Write the score (JSON, CSV), cells (GeoJSON for QuPath, CSV), the label TIFF and the "
              "modalities, with the settings, engine and model hash.")
EXPORT_DIALOG = "Folder for the DeepLIIF outputs"
EXPORTED = "DeepLIIF outputs written to {path}."
NOTHING_TO_EXPORT = "Run first: there is nothing to export yet."

# ---- server for QuPath -------------------------------------------------------------------
SERVE = "Serve for QuPath"
SERVE_TIP = ("Start the local engine server (127.0.0.1, token-protected) with the engine chosen "
             "above, so the QuPath extension can score with it; press again to stop it.")
SERVE_STARTING = "Starting the server..."
SERVE_RUNNING = "Serving {engine} at {url} (token in {token_path})"
SERVE_STOPPED = "Server stopped."

# ---- points models ----------------------------------------------------------------------------
POINTS_BOX = "Points"
POINTS_NOTE = ("A points model finds one point per nucleus, not cells: the cell thresholds and compartment "
               "scoring do not apply. These two choose the points from the network's candidates (no re-run).")
POINT_CONFIDENCE = "Confidence"
POINT_CONFIDENCE_TIP = ("Lowest confidence (0.05-1) a point needs; points below it are dropped "
                        "(re-selects at once, no network run).")
POINT_DISTANCE = "NMS distance (µm)"
POINT_DISTANCE_TIP = ("A point suppresses every weaker point (of any class) within this distance, so one "
                      "nucleus keeps one point (re-selects at once, no network run).")
RESULT_POINTS = "Points at confidence ≥ {threshold:.2f}, one point per {distance:.1f} µm (counts per class after %)."
POINTS_NOT_EXACT = (" Near the area's edges these points may differ from the whole image's: at these settings a "
                    "chain of suppressions reaches past the pixels read. score --roi or the server with this "
                    "confidence and distance give the exact points.")
