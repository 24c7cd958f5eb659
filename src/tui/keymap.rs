//! Every key the explorer knows, per screen: the single source of the help screen (`?`).

/// (keys, what they do) per screen.
pub const HEATMAP_KEYS: &[(&str, &str)] = &[
    ("hjkl ←↓↑→", "move the cursor (mouse: click, wheel)"),
    ("PgUp/Dn Home/End", "jump"),
    ("r  R", "run / back to the final resid_post"),
    ("c", "cancel the sweep (finished rows stay)"),
    ("Enter", "drill down: the head becomes the receiver"),
    ("i", "drill-down input: v → q → k"),
    ("[  ]  Bksp", "back / forward along the breadcrumbs"),
    (":  e", "type a receiver: resid_post:41, 39.7.v …"),
    ("b", "begin layer (first sender layer)"),
    ("a", "attention of the head (or the selection)"),
    ("space", "select / unselect the head"),
    ("t  g  G", "tag into group · next group · new group"),
    ("f", "colour: fixed ±20% / auto"),
    ("z  Z", "crop to layers LO-HI / show all"),
    ("o", "swap orientation (layers as rows/cols)"),
    ("<  >", "threshold of the first head list (±1%)"),
    ("s", "save the run (with groups) to results/"),
    ("S", "save the head groups and selection"),
    ("w", "gallery: open, compare, difference"),
    (
        "prompts",
        "typing replaces; ←→ Home End ^A ^E ^U ^W ^K edit",
    ),
    ("m", "setup: model, data, shots, offset, …"),
    ("?", "this help"),
    ("Esc", "clear selection; no quit"),
    (
        "q  ^C",
        "quit (q asks first if groups or a run are unsaved)",
    ),
];

pub const ATTENTION_KEYS: &[(&str, &str)] = &[
    ("n", "switch normal / contrast run"),
    ("+ -", "mean over more / fewer of the first prompts"),
    (
        "p  P",
        "one prompt (p again: the next one) / back to the mean",
    ),
    ("b", "bars of one query row instead of the grid"),
    ("↑↓ jk", "query row of the bar view"),
    ("Tab ←→", "next / previous selected head"),
    ("Esc q", "back to the heatmap"),
];

pub const SETUP_KEYS: &[(&str, &str)] = &[
    ("↑↓ jk", "choose a field"),
    ("Enter", "edit it (Enter confirms, Esc cancels)"),
    ("L", "load the model and data with these settings"),
    ("Esc q", "back"),
];

pub const GALLERY_KEYS: &[(&str, &str)] = &[
    ("↑↓ jk", "choose a result"),
    ("Enter", "open it on the heatmap"),
    ("m", "mark it for comparison"),
    (
        "c  d",
        "compare with the marked one: side by side / difference",
    ),
    ("r", "rescan the folders"),
    ("Esc q", "back"),
];
