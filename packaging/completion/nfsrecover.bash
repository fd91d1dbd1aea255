# bash completion for nfsrecover and its applet names. Applets, verbs and
# options come from the program itself (--list, and each applet's --help),
# so completion cannot drift from what it accepts.
_nfsrecover() {
  local cur=${COMP_WORDS[COMP_CWORD]} prog=${COMP_WORDS[0]##*/} applet="" i words
  case $prog in
    rpc.statd) applet=statd ;; sm-notify) applet=notify ;;
    nfsdcltrack) applet=cltrack ;; nfsdcld) applet=cld ;;
    nfsrecover)
      if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$(command nfsrecover --list 2>/dev/null) --help --version --list --list-full --install" -- "$cur"))
        return
      fi
      applet=${COMP_WORDS[1]} ;;
    *) return ;;
  esac
  local help
  help=$(command nfsrecover "$applet" --help 2>&1)
  words=$(printf '%s\n' "$help" | grep -oE -- '(^|[ ,[])--?[A-Za-z][A-Za-z0-9-]*' | tr -d ' ,[' | sort -u)
  # verbs: the "Commands:" section and "nfsrecover APPLET VERB" lines
  words="$words $(printf '%s\n' "$help" | awk '/^Commands:/{c=1;next} !NF{c=0} c{sub(/,.*/,"",$1);print $1}')"
  words="$words $(printf '%s\n' "$help" | grep -oE "nfsrecover $applet (import|export|push|pull)" | awk '{print $3}')"
  if [[ $cur == -* ]] || [ -n "$words" ]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
  [ ${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _nfsrecover nfsrecover rpc.statd sm-notify nfsdcltrack nfsdcld
