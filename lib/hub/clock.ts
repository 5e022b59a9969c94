/** The clock of the hub's rotation: {@link Clock} lives in lib/util, where every periodic job finds it. */
export { type Clock, systemClock } from "../util/clock.ts";
