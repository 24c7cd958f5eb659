//! Every key the explorer knows, per screen: one action table per screen, the single source of
//! the help screen (`?`) and of the dispatch.

use crossterm::event::KeyCode;

/// One line of a screen's key table: the keys, the help text, and what each key does. The
/// `?` help prints `label` and `what`; the dispatch looks the pressed key up in `keys`; both
/// read the same table, so the help cannot list a key the screen ignores or miss one it has.
pub struct Binding<A: 'static> {
    pub label: &'static str,
    pub what: &'static str,
    pub keys: &'static [(KeyCode, A)],
}

/// What the user asked for on the heatmap, before it touches `App` (`App::update_heatmap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeatmapAction {
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Run,
    DefaultRun,
    Cancel,
    Drill,
    DrillSelection,
    CycleInput,
    Back,
    Forward,
    EditReceiver,
    EditBegin,
    Attention,
    Select,
    Tag,
    NextGroup,
    NewGroup,
    ToggleRange,
    Crop,
    Uncrop,
    Orientation,
    ThresholdDown,
    ThresholdUp,
    Save,
    SaveGroups,
    Figure,
    Gallery,
    Runs,
    Setup,
    Circuit,
    Help,
    Clear,
    Quit,
}

use HeatmapAction as H;
use KeyCode::Char as C;

/// The heatmap's keys: the single source of its help and its dispatch.
pub const HEATMAP: &[Binding<HeatmapAction>] = &[
    Binding {
        label: "hjkl ←↓↑→",
        what: "move the cursor (mouse: click, wheel)",
        keys: &[
            (C('h'), H::Left),
            (C('j'), H::Down),
            (C('k'), H::Up),
            (C('l'), H::Right),
            (KeyCode::Left, H::Left),
            (KeyCode::Down, H::Down),
            (KeyCode::Up, H::Up),
            (KeyCode::Right, H::Right),
        ],
    },
    Binding {
        label: "PgUp PgDn",
        what: "8 cells up / down",
        keys: &[
            (KeyCode::PageUp, H::PageUp),
            (KeyCode::PageDown, H::PageDown),
        ],
    },
    Binding {
        label: "Home End",
        what: "the top layer's first head / the bottom layer's last",
        keys: &[(KeyCode::Home, H::Home), (KeyCode::End, H::End)],
    },
    Binding {
        label: "r  R",
        what: "run / back to the final resid_post",
        keys: &[(C('r'), H::Run), (C('R'), H::DefaultRun)],
    },
    Binding {
        label: "c",
        what: "cancel the sweep (finished rows stay)",
        keys: &[(C('c'), H::Cancel)],
    },
    Binding {
        label: "Enter",
        what: "drill down: the head becomes the receiver",
        keys: &[(KeyCode::Enter, H::Drill)],
    },
    Binding {
        label: "D",
        what: "the selected heads as one receiver (prompt: edit q/k/v per head)",
        keys: &[(C('D'), H::DrillSelection)],
    },
    Binding {
        label: "i",
        what: "drill-down input (Enter, D): v → q → k",
        keys: &[(C('i'), H::CycleInput)],
    },
    Binding {
        label: "[  ]  Bksp",
        what: "back / forward along the breadcrumbs",
        keys: &[
            (C('['), H::Back),
            (C(']'), H::Forward),
            (KeyCode::Backspace, H::Back),
        ],
    },
    Binding {
        label: ":  e",
        what: "type a receiver: resid_post:41, 39.7.v 39.12.q …",
        keys: &[(C(':'), H::EditReceiver), (C('e'), H::EditReceiver)],
    },
    Binding {
        label: "b",
        what: "begin layer (first sender layer)",
        keys: &[(C('b'), H::EditBegin)],
    },
    Binding {
        label: "a",
        what: "attention of the head (or the selection)",
        keys: &[(C('a'), H::Attention)],
    },
    Binding {
        label: "space",
        what: "select / unselect the head",
        keys: &[(C(' '), H::Select)],
    },
    Binding {
        label: "t  g  G",
        what: "tag into group · next group · new group",
        keys: &[
            (C('t'), H::Tag),
            (C('g'), H::NextGroup),
            (C('G'), H::NewGroup),
        ],
    },
    Binding {
        label: "f",
        what: "colour: fixed ±20% / auto",
        keys: &[(C('f'), H::ToggleRange)],
    },
    Binding {
        label: "z  Z",
        what: "crop to layers LO-HI / show all",
        keys: &[(C('z'), H::Crop), (C('Z'), H::Uncrop)],
    },
    Binding {
        label: "o",
        what: "swap orientation (layers as rows/cols)",
        keys: &[(C('o'), H::Orientation)],
    },
    Binding {
        label: "<  >",
        what: "threshold of the first head list (±1%)",
        keys: &[(C('<'), H::ThresholdDown), (C('>'), H::ThresholdUp)],
    },
    Binding {
        label: "s",
        what: "save the run (with groups, selection) to results/",
        keys: &[(C('s'), H::Save)],
    },
    Binding {
        label: "S",
        what: "save the head groups and selection",
        keys: &[(C('S'), H::SaveGroups)],
    },
    Binding {
        label: "F",
        what: "figure of this view (.svg, .png) beside the saved run",
        keys: &[(C('F'), H::Figure)],
    },
    Binding {
        label: "w",
        what: "gallery: open, compare, difference",
        keys: &[(C('w'), H::Gallery)],
    },
    Binding {
        label: "L",
        what: "this session's runs (each with its state and where it is saved)",
        keys: &[(C('L'), H::Runs)],
    },
    Binding {
        label: "m",
        what: "setup: model, data, shots, offset, …",
        keys: &[(C('m'), H::Setup)],
    },
    Binding {
        label: "C",
        what: "circuit screen: evaluate, ablate, FV of the groups",
        keys: &[(C('C'), H::Circuit)],
    },
    Binding {
        label: "?",
        what: "this help",
        keys: &[(C('?'), H::Help)],
    },
    Binding {
        label: "Esc",
        what: "clear selection; no quit",
        keys: &[(KeyCode::Esc, H::Clear)],
    },
    Binding {
        label: "q  ^C",
        what: "quit (q asks first if groups or a run are unsaved)",
        keys: &[(C('q'), H::Quit)],
    },
];

/// Help lines that are not keys of one screen (shown after the heatmap's table).
pub const HEATMAP_NOTES: &[(&str, &str)] = &[(
    "prompts",
    "typing replaces; ←→ Home End ^A ^E ^U ^W ^K edit",
)];

/// The action a key has in a table, if any.
pub fn lookup<A: Copy>(table: &[Binding<A>], code: KeyCode) -> Option<A> {
    table
        .iter()
        .flat_map(|b| b.keys.iter())
        .find(|(k, _)| *k == code)
        .map(|&(_, a)| a)
}

/// The help lines of a table: (keys, what they do), in table order.
pub fn help_lines<A>(table: &[Binding<A>]) -> Vec<(&'static str, &'static str)> {
    table.iter().map(|b| (b.label, b.what)).collect()
}

/// What the user asked for on the attention view (`App::update_attention`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionAction {
    SwitchRun,
    MorePrompts,
    FewerPrompts,
    OnePrompt,
    MeanPrompts,
    Bars,
    QueryUp,
    QueryDown,
    NextHead,
    PreviousHead,
    Figure,
    Help,
    Back,
}

use AttentionAction as At;

/// The attention view's keys.
pub const ATTENTION: &[Binding<AttentionAction>] = &[
    Binding {
        label: "n",
        what: "switch normal / contrast run",
        keys: &[(C('n'), At::SwitchRun)],
    },
    Binding {
        label: "+ -",
        what: "mean over more / fewer of the first prompts",
        keys: &[
            (C('+'), At::MorePrompts),
            (C('='), At::MorePrompts),
            (C('-'), At::FewerPrompts),
        ],
    },
    Binding {
        label: "p  P",
        what: "one prompt (p again: the next one) / back to the mean",
        keys: &[(C('p'), At::OnePrompt), (C('P'), At::MeanPrompts)],
    },
    Binding {
        label: "b",
        what: "bars of one query row instead of the grid",
        keys: &[(C('b'), At::Bars)],
    },
    Binding {
        label: "↑↓ jk",
        what: "query row of the bar view",
        keys: &[
            (KeyCode::Up, At::QueryUp),
            (C('k'), At::QueryUp),
            (KeyCode::Down, At::QueryDown),
            (C('j'), At::QueryDown),
        ],
    },
    Binding {
        label: "Tab ←→ hl",
        what: "next / previous selected head",
        keys: &[
            (KeyCode::Tab, At::NextHead),
            (KeyCode::Right, At::NextHead),
            (C('l'), At::NextHead),
            (KeyCode::BackTab, At::PreviousHead),
            (KeyCode::Left, At::PreviousHead),
            (C('h'), At::PreviousHead),
        ],
    },
    Binding {
        label: "F",
        what: "figure of these heads (.svg, .png) beside the saved run",
        keys: &[(C('F'), At::Figure)],
    },
    Binding {
        label: "?",
        what: "this help",
        keys: &[(C('?'), At::Help)],
    },
    Binding {
        label: "Esc q",
        what: "back to the heatmap",
        keys: &[(KeyCode::Esc, At::Back), (C('q'), At::Back)],
    },
];

/// What the user asked for on the setup form (`App::update_setup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupAction {
    Up,
    Down,
    Edit,
    Load,
    ScrollUp,
    ScrollDown,
    NextExample,
    PreviousExample,
    Help,
    Back,
}

use SetupAction as Su;

/// The setup form's keys.
pub const SETUP: &[Binding<SetupAction>] = &[
    Binding {
        label: "↑↓ jk",
        what: "choose a field",
        keys: &[
            (KeyCode::Up, Su::Up),
            (C('k'), Su::Up),
            (KeyCode::Down, Su::Down),
            (C('j'), Su::Down),
        ],
    },
    Binding {
        label: "Enter",
        what: "edit it (Enter confirms, Esc cancels)",
        keys: &[(KeyCode::Enter, Su::Edit)],
    },
    Binding {
        label: "L",
        what: "load the model and data with these settings",
        keys: &[(C('L'), Su::Load), (C('l'), Su::Load)],
    },
    Binding {
        label: "PgUp PgDn",
        what: "scroll the details (the error, the data, the example)",
        keys: &[
            (KeyCode::PageUp, Su::ScrollUp),
            (KeyCode::PageDown, Su::ScrollDown),
        ],
    },
    Binding {
        label: "n  p",
        what: "next / previous example prompt pair",
        keys: &[(C('n'), Su::NextExample), (C('p'), Su::PreviousExample)],
    },
    Binding {
        label: "?",
        what: "this help",
        keys: &[(C('?'), Su::Help)],
    },
    Binding {
        label: "Esc q",
        what: "back",
        keys: &[(KeyCode::Esc, Su::Back), (C('q'), Su::Back)],
    },
];

/// What the user asked for in the gallery (`App::update_gallery`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GalleryAction {
    Up,
    Down,
    Filter,
    Open,
    Mark,
    Compare,
    Difference,
    Rescan,
    Help,
    Back,
}

use GalleryAction as Ga;

/// The gallery's keys.
pub const GALLERY: &[Binding<GalleryAction>] = &[
    Binding {
        label: "↑↓ jk",
        what: "choose a result",
        keys: &[
            (KeyCode::Up, Ga::Up),
            (C('k'), Ga::Up),
            (KeyCode::Down, Ga::Down),
            (C('j'), Ga::Down),
        ],
    },
    Binding {
        label: "/",
        what: "filter: list the entries with this text (Esc clears)",
        keys: &[(C('/'), Ga::Filter)],
    },
    Binding {
        label: "Enter",
        what: "open a run on the heatmap / apply head groups to it",
        keys: &[(KeyCode::Enter, Ga::Open)],
    },
    Binding {
        label: "m",
        what: "mark it for comparison",
        keys: &[(C('m'), Ga::Mark)],
    },
    Binding {
        label: "c  d",
        what: "compare with the marked one: side by side / difference",
        keys: &[(C('c'), Ga::Compare), (C('d'), Ga::Difference)],
    },
    Binding {
        label: "r",
        what: "rescan the folders",
        keys: &[(C('r'), Ga::Rescan)],
    },
    Binding {
        label: "?",
        what: "this help",
        keys: &[(C('?'), Ga::Help)],
    },
    Binding {
        label: "Esc q",
        what: "clear the filter, or back",
        keys: &[(KeyCode::Esc, Ga::Back), (C('q'), Ga::Back)],
    },
];

/// What the user asked for on the comparison of two results (`App::update_compare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareAction {
    Up,
    Down,
    Left,
    Right,
    ToggleDifference,
    Figure,
    Help,
    Back,
}

/// The comparison's keys.
pub const COMPARE: &[Binding<CompareAction>] = &[
    Binding {
        label: "hjkl ←↓↑→",
        what: "move the cursor on both sides (the grids scroll together)",
        keys: &[
            (C('h'), CompareAction::Left),
            (C('j'), CompareAction::Down),
            (C('k'), CompareAction::Up),
            (C('l'), CompareAction::Right),
            (KeyCode::Left, CompareAction::Left),
            (KeyCode::Down, CompareAction::Down),
            (KeyCode::Up, CompareAction::Up),
            (KeyCode::Right, CompareAction::Right),
        ],
    },
    Binding {
        label: "d",
        what: "difference / side by side",
        keys: &[(C('d'), CompareAction::ToggleDifference)],
    },
    Binding {
        label: "F",
        what: "figure of this comparison (.svg, .png) in the results folder",
        keys: &[(C('F'), CompareAction::Figure)],
    },
    Binding {
        label: "?",
        what: "this help",
        keys: &[(C('?'), CompareAction::Help)],
    },
    Binding {
        label: "Esc q",
        what: "back to the gallery",
        keys: &[
            (KeyCode::Esc, CompareAction::Back),
            (C('q'), CompareAction::Back),
        ],
    },
];

/// What the user asked for on the circuit screen (`App::update_circuit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitAction {
    Up,
    Down,
    EditPositions,
    Evaluate,
    Ablate,
    FunctionVectors,
    ToggleMinimality,
    ToggleGreedy,
    EditKnockouts,
    EditRandom,
    NextReport,
    ScrollUp,
    ScrollDown,
    PrevPanel,
    NextPanel,
    Cancel,
    Save,
    Help,
    Back,
    Quit,
}

use CircuitAction as Ci;

/// The circuit screen's keys: the single source of its help and its dispatch.
pub const CIRCUIT: &[Binding<CircuitAction>] = &[
    Binding {
        label: "↑↓ jk",
        what: "choose a group",
        keys: &[
            (KeyCode::Up, Ci::Up),
            (C('k'), Ci::Up),
            (KeyCode::Down, Ci::Down),
            (C('j'), Ci::Down),
        ],
    },
    Binding {
        label: "p  Enter",
        what: "positions of the group: all, last, tok:TEXT, answers",
        keys: &[
            (C('p'), Ci::EditPositions),
            (KeyCode::Enter, Ci::EditPositions),
        ],
    },
    Binding {
        label: "e",
        what: "evaluate the circuit: F(C), faithfulness, knock-outs",
        keys: &[(C('e'), Ci::Evaluate)],
    },
    Binding {
        label: "a",
        what: "ablate the group against N random groups",
        keys: &[(C('a'), Ci::Ablate)],
    },
    Binding {
        label: "f",
        what: "function vectors of the group's heads",
        keys: &[(C('f'), Ci::FunctionVectors)],
    },
    Binding {
        label: "m  g",
        what: "minimality per head on/off · greedy search on/off",
        keys: &[(C('m'), Ci::ToggleMinimality), (C('g'), Ci::ToggleGreedy)],
    },
    Binding {
        label: "K",
        what: "knock-out sets (empty: one per group and per head)",
        keys: &[(C('K'), Ci::EditKnockouts)],
    },
    Binding {
        label: "n",
        what: "random groups and seed of the ablation: N SEED",
        keys: &[(C('n'), Ci::EditRandom)],
    },
    Binding {
        label: "Tab",
        what: "show the circuit / ablation / FV report",
        keys: &[(KeyCode::Tab, Ci::NextReport)],
    },
    Binding {
        label: "PgUp PgDn",
        what: "scroll the report",
        keys: &[
            (KeyCode::PageUp, Ci::ScrollUp),
            (KeyCode::PageDown, Ci::ScrollDown),
        ],
    },
    Binding {
        label: "←→ hl",
        what: "FV grid: previous / next head (and all)",
        keys: &[
            (KeyCode::Left, Ci::PrevPanel),
            (C('h'), Ci::PrevPanel),
            (KeyCode::Right, Ci::NextPanel),
            (C('l'), Ci::NextPanel),
        ],
    },
    Binding {
        label: "c",
        what: "cancel the analysis (what is finished stays)",
        keys: &[(C('c'), Ci::Cancel)],
    },
    Binding {
        label: "s",
        what: "save the reports to results/",
        keys: &[(C('s'), Ci::Save)],
    },
    Binding {
        label: "?",
        what: "this help",
        keys: &[(C('?'), Ci::Help)],
    },
    Binding {
        label: "Esc",
        what: "back to the heatmap",
        keys: &[(KeyCode::Esc, Ci::Back)],
    },
    Binding {
        label: "q",
        what: "quit (asks first if something is unsaved)",
        keys: &[(C('q'), Ci::Quit)],
    },
];
