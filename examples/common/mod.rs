//! What the examples share: how they read their settings.

/// The settings named by `variables`, each the command-line argument at its position or else
/// the environment variable of that name; `None` when one of them is missing or empty.
pub(crate) fn settings<const N: usize>(variables: [&str; N]) -> Option<[String; N]> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut values = Vec::with_capacity(N);
    for (position, variable) in variables.into_iter().enumerate() {
        let value = args.get(position).cloned().or_else(|| std::env::var(variable).ok());
        values.push(value.filter(|v| !v.is_empty())?);
    }
    values.try_into().ok()
}
