#!/bin/bash
# @SBATCH@
# The SLURM job script of a diffusion_lm run. This is the template: diffusion_lm.slurm.sbatch_script fills the
# lines and values marked with "@" (the #SBATCH header, the run folder, the environment set-up, the training
# commands). It is plain bash, checked by shellcheck in the tests (tests/test_slurm.py).
# shellcheck disable=SC2317  # the helpers below are called from traps and from the training commands filled in
# @ABOUT@
_run_dir='@RUN_DIR@' _ckpt='@CKPT_DIR@' _requeue='@REQUEUE@'
_log() { printf '[diffusion_lm.slurm %(%FT%T)T] %s\n' -1 "$*"; }  # bash's own clock: no process to kill
_child='' _how='' _fwd=() _rc=0 _preempted=0 _terminated=0
_status() {  # _status PID FIELD: one field of /proc/PID/status (PPid, SigCgt, ...)
  local k v
  { while read -r k v; do [ "$k" = "$2:" ] && { echo "$v"; return 0; }; done < "/proc/$1/status"; } 2>/dev/null
  return 1
}
_is_ours() {  # is process $1 the launched command or one of its descendants?
  local p=$1
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do [ "$p" = "$_child" ] && return 0; p=$(_status "$p" PPid) || return 1; done
  return 1
}
_training_pid() {  # _training_pid N: the PID in train.pid, once it is ours and handles signal N (StopFlag installed)
  local pid='' cgt
  { read -r pid || [ -n "$pid" ]; } 2>/dev/null < "$_ckpt/train.pid" || return 1   # the trainer writes no newline
  [[ $pid =~ ^[0-9]+$ ]] && _is_ours "$pid" || return 1
  cgt=$(_status "$pid" SigCgt) && (( (0x$cgt >> ($1 - 1)) & 1 )) && echo "$pid"
}
_forward() {  # _forward SIG N, in the background: pass signal SIG (number N) on as soon as the training can take it
  local pid i=0
  while kill -0 "$_child" 2>/dev/null; do
    if [ "$_how" = srun ]; then
      if [ -e "$_ckpt/train.pid" ]; then
        _log "forwarding SIG$1 to srun ($_child), which passes it to torchrun on every node"; kill -"$1" "$_child"; return
      fi
    elif pid=$(_training_pid "$2"); then
      _log "forwarding SIG$1 to the training process $pid (from $_ckpt/train.pid)"; kill -"$1" "$pid"; return
    fi
    [ $((i++)) = 0 ] && _log "train.pid does not name a process of this job that handles SIG$1 yet; forwarding as soon as it does"
    sleep 1
  done
}
_on_usr1() {  # the --signal from SLURM: have the training checkpoint and stop, then requeue
  _log "SIGUSR1: the time limit is near or the job is being preempted; asking the training to checkpoint and stop"
  [ "$_preempted" = 1 ] && return; _preempted=1
  if [ -n "$_child" ]; then _forward USR1 10 & _fwd+=("$!"); fi
}
_on_term() {  # SLURM ends the job; with proctrack/cgroup only this shell (and srun's tasks) get SIGTERM, not the training
  _log "SIGTERM: SLURM is ending the job; asking the training to checkpoint and stop"
  [ "$_terminated" = 1 ] && return; _terminated=1
  if [ -n "$_child" ] && [ "$_how" != srun ]; then _forward TERM 15 & _fwd+=("$!"); fi
}
_keep_notebook() {  # an earlier attempt's executed notebook becomes notebook.attempt-N.ipynb
  local n=1
  [ -e notebook.ipynb ] || return 0
  while [ -e "notebook.attempt-$n.ipynb" ]; do n=$((n + 1)); done
  mv notebook.ipynb "notebook.attempt-$n.ipynb"
}
_run() {  # _run notebook|process|torchrun|srun CMD...: run CMD in the background, wait through trapped signals, set _rc
  if [ "$_preempted" = 1 ] || [ "$_terminated" = 1 ]; then _log "signalled before the $1 command started: not starting it"; _how=skipped _rc=0; return; fi
  _how=$1; shift
  rm -f "$_ckpt/train.pid"
  if [ "$_how" = notebook ]; then _keep_notebook; ( trap '' TERM; exec "$@" ) & else "$@" & fi  # papermill outlives its kernel
  _child=$!
  while :; do wait "$_child"; _rc=$?; kill -0 "$_child" 2>/dev/null || break; done
  wait "$_child"; _rc=$?
  if [ "${#_fwd[@]}" -gt 0 ]; then kill "${_fwd[@]}" 2>/dev/null; fi
  _child='' _fwd=()
  _log "the command exited with status $_rc"
}
trap _on_usr1 USR1
trap _on_term TERM
_log "job ${SLURM_JOB_ID:-none} (${SLURM_JOB_NAME:-}), attempt $((${SLURM_RESTART_COUNT:-0} + 1)), on $(hostname), mode @MODE@, GPUs on the node: ${SLURM_GPUS_ON_NODE:-none}"
export PYTHONUNBUFFERED=1
# @ENV_SETUP@
set -u
# @THREADS@
cd "$_run_dir" || exit 1
# @TRAINING@
if [ "$_preempted" = 1 ] && [ "$_rc" = 0 ] && { [ "$_how" = notebook ] || [ "$_how" = process ]; } && grep -qs '"finished": true' "$_ckpt/result.json"; then
  _log "the training had already finished when the signal came: nothing to continue"; _preempted=0
fi
if [ "$_preempted" = 1 ]; then
  if [ "$_requeue" = 1 ] && scontrol requeue "${SLURM_JOB_ID:-}"; then
    _log "requeued job $SLURM_JOB_ID: the next attempt resumes from the newest checkpoint in $_ckpt"
    _log "this attempt ends; the job waits in the queue to run again"; exit 0
  fi
  _log "preempted and not requeued: resubmit $_run_dir/job.sbatch to continue from the newest checkpoint"
  _log "exit 75"; exit 75
fi
[ "$_terminated" = 1 ] && [ "$_rc" = 0 ] && _rc=143
_log "exit $_rc"
exit $_rc
