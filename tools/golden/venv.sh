# Sourced by tools/golden/run.sh and families.sh: golden_venv creates or updates the golden venv ($golden,
# outside the repo) from requirements.txt and constraints.txt, reinstalling only when those files change.
# Needs `here` (tools/golden), paths.sh sourced, and a `log` function.
golden_venv() {
	local stamp="$golden/.gomps-requirements.sha256" want
	want="$(cat "$here/requirements.txt" "$here/constraints.txt" | sha256sum | cut -d' ' -f1)"
	if [ ! -x "$golden/bin/python" ]; then
		log "creating venv $golden"
		command -v "$python" >/dev/null || python=python3
		"$python" -m venv "$golden"
	fi
	if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
		log "installing pinned requirements into $golden (PyTorch is large)"
		"$golden/bin/pip" install --quiet --disable-pip-version-check \
			-r "$here/requirements.txt" -c "$here/constraints.txt"
		echo "$want" >"$stamp"
	else
		log "venv up to date: $golden"
	fi
}
