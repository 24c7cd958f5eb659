fn main() {
    std::process::exit(headhunt::cli::main());
}
