/** A labelled text input bound to a string state (`set` gets every edit). */
export function TextField(props: {
  label: string;
  name: string;
  value: string;
  set: (value: string) => void;
  placeholder?: string;
}) {
  return (
    <label>
      {props.label}
      <input
        name={props.name}
        placeholder={props.placeholder}
        value={props.value}
        onInput={(e) => props.set(e.currentTarget.value)}
      />
    </label>
  );
}
